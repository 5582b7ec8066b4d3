"""Pre-training and SFT of SpeechLMs with Ray Train + DeepSpeed ZeRO (rayjobs/pretrain.py, rayjobs/sft.py).

config.py settings -> trainer.py driver checks and TorchTrainer -> loop.py on every worker: model.py weights,
data.py examples, packing and rank shards, the DeepSpeed engine, checkpoint.py, samples.py; session.py stands
between the loop and Ray Train (or one local process).
"""
