"""tts-align: SpeechLM token layout, codec, corpus and inference."""
