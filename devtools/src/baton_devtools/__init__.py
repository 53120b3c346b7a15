"""Development doubles and tooling: emulators, supervisor, embedded infrastructure."""
