#!/usr/bin/env python3
"""HF transformers as the independent reference for a model folder torl reads or writes.

    hf_reference.py MODEL_DIR OUT.safetensors [--dtype float32|bfloat16] [--differs-from DIR]
    hf_reference.py MODEL_DIR --generate PROMPT [--max-new-tokens N]

The first form loads MODEL_DIR with AutoModelForCausalLM.from_pretrained and writes what it computes
in the layout of ../shared/fixtures/tiny-qwen2/reference.safetensors, which `torl model check`
compares with torl's own forward: input_ids, attention_mask and position_ids (3 rows of 12 random
ids, pad id 0; row 1 left-padded, row 2 right-padded), logits, token_logprobs (float64
log p(ids[t+1] | ids[..t])), prompt_ids/prompt_mask (2 rows of 8, row 1 left-padded) and greedy_ids
(HF generate, greedy, 16 new tokens, EOS not allowed to end it). --differs-from fails (exit 1) when
the weights equal those of DIR, so that a test of a trained checkpoint cannot pass on untrained weights.

The second form prints HF generate's greedy continuation of PROMPT for a byte-level model (ids 0..255
are the bytes, as `torl generate --byte-level`), stopping at the model's EOS.

Runs with the project's .venv/bin/python (tools/setup installs the pinned packages).
"""
import argparse
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM
from transformers.utils import logging as hf_logging


def load(model_dir, dtype):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model.eval()
    return model


def weights_differ(model_dir, other_dir):
    ours, theirs = load_file(f"{model_dir}/model.safetensors"), load_file(f"{other_dir}/model.safetensors")
    if ours.keys() != theirs.keys():
        return True
    return any(not torch.equal(ours[name], theirs[name]) for name in ours)


def reference(model, dtype):
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :5] = 0
    mask[2, 9:] = 0
    ids = ids * mask
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    prompt_ids = torch.randint(3, vocab, (2, 8), generator=generator)
    prompt_mask = torch.ones_like(prompt_ids)
    prompt_mask[1, :3] = 0
    prompt_ids = prompt_ids * prompt_mask
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        logprobs = torch.log_softmax(logits.double()[:, :-1], dim=-1)
        token_logprobs = logprobs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        greedy = model.generate(prompt_ids, attention_mask=prompt_mask, max_new_tokens=16, min_new_tokens=16,
                                do_sample=False, pad_token_id=0)
    return {
        "input_ids": ids, "attention_mask": mask, "position_ids": positions,
        "logits": logits.float().contiguous(), "token_logprobs": token_logprobs.contiguous(),
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "greedy_ids": greedy.contiguous(),
    }


def generate_text(model, prompt, max_new_tokens):
    ids = torch.tensor([list(prompt.encode())])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=model.config.eos_token_id)
    new = [t for t in out[0, ids.shape[1]:].tolist() if t < 256]
    return bytes(new).decode("utf-8", errors="replace")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("out", nargs="?")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--differs-from")
    parser.add_argument("--generate")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    hf_logging.disable_progress_bar()
    model = load(args.model, getattr(torch, args.dtype))
    if args.generate is not None:
        sys.stdout.write(generate_text(model, args.generate, args.max_new_tokens))
        return 0
    if args.out is None:
        parser.error("OUT.safetensors is needed (or --generate PROMPT)")
    if args.differs_from and not weights_differ(args.model, args.differs_from):
        print(f"hf_reference: the weights of {args.model} equal those of {args.differs_from}", file=sys.stderr)
        return 1
    save_file(reference(model, args.dtype), args.out)
    print(f"hf_reference: {args.out} from {args.model} (transformers, {args.dtype})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
