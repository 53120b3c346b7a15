"""Gemini API emulator: the REST calls `langchain-google-genai` makes, scripted and faultable."""
