#!/usr/bin/env python3
"""A random model in HF's checkpoint layout, for torl's checks at a real model's shape on the GPU machine.

    random_checkpoint.py CONFIG_JSON OUT_DIR --tokenizer DIR

transformers' own initialisation (torch.manual_seed(0)) of a Qwen2ForCausalLM of the config's shape, in
bf16, saved with save_pretrained (config.json and safetensors), and the tokenizer files of DIR copied
beside it, so that `torl train` loads it as it would Qwen2.5-Math-1.5B.
"""
import argparse
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--tokenizer", required=True)
    args = parser.parse_args()
    config = AutoConfig.from_pretrained(args.config)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(args.out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(args.tokenizer) / name, Path(args.out) / name)
    print(f"random_checkpoint: {sum(p.numel() for p in model.parameters())} parameters -> {args.out}")


if __name__ == "__main__":
    main()
