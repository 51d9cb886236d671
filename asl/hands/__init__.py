"""Find the hand first: MediaPipe detection (cached), hand crops, normalised landmark features."""
