"""GRPO alignment of the SpeechLM (Inworld TTS-1 section 3.5): math.py holds the loss and advantages."""
