#!/usr/bin/env python3
"""HF transformers' `generate` on the shape `torl generate bench` measures, for the side-by-side ratio.

    hf_generate_bench.py CONFIG_JSON --batch B [--prompt-len 256] [--new-tokens 256] [--repeat 3]

Random weights (torch.manual_seed(0); transformers' own initialisation) of the config's shape, bf16, on
cuda; random prompt ids; greedy, every sequence runs its whole budget (min_new_tokens = max_new_tokens,
so EOS cannot end one early), KV cache on: the same work as torl's bench. One untimed warm-up call,
then R timed calls; the prefill alone (one forward of the prompts) is timed the same way, so that the
decode rate leaves it out as torl's does. Prints one line:
    HF generate batch B: prefill P tok/s, decode D tok/s (S ms/step), end-to-end E tok/s
"""
import argparse
import statistics
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def timed(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--prompt-len", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    config = AutoConfig.from_pretrained(args.config)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.eval()
    ids = torch.randint(0, config.vocab_size, (args.batch, args.prompt_len), device="cuda")
    mask = torch.ones_like(ids)
    options = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False,
                   use_cache=True, pad_token_id=0, eos_token_id=None)

    @torch.inference_mode()
    def prefill():
        model(input_ids=ids, attention_mask=mask, use_cache=True)

    @torch.inference_mode()
    def generate():
        out = model.generate(input_ids=ids, attention_mask=mask, **options)
        assert out.shape[1] == args.prompt_len + args.new_tokens, out.shape

    generate()  # warm-up
    prefill()
    prefill_s = statistics.median(timed(prefill) for _ in range(args.repeat))
    total_s = statistics.median(timed(generate) for _ in range(args.repeat))
    decode_s = max(total_s - prefill_s, 1e-9)
    steps = args.new_tokens - 1  # the first new token comes out of the prefill
    print(f"HF generate batch {args.batch}: prefill {args.batch * args.prompt_len / prefill_s:.0f} tok/s, "
          f"decode {args.batch * steps / decode_s:.1f} tok/s ({decode_s * 1000 / steps:.2f} ms/step), "
          f"end-to-end {args.batch * args.new_tokens / total_s:.1f} tok/s; medians of {args.repeat}")


if __name__ == "__main__":
    main()
