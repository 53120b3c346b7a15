"""Gemini API emulator: the REST calls `langchain-google-genai` makes (generateContent, its
streaming variant, countTokens, models.get/list) for the models it serves, scripted and
faultable."""
