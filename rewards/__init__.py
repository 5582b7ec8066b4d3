"""Reward models (ASR error rate, speaker similarity, DNSMOS) and their composition."""
