"""doctor.watch in a Hugging Face Trainer run (pip install 'doctor[hf]'); the model is built from a config,
nothing is downloaded.

    python examples/watch/hf_trainer.py             # healthy: no findings
    python examples/watch/hf_trainer.py --lr 30     # a rate far too high: the pooler's tanh saturates
"""

import argparse
import os

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from doctor.integrations.hf import DoctorCallback


class Tokens(torch.utils.data.Dataset):
    """Token sequences whose class decides which slice of the vocabulary they mostly draw from."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 2, (n,), generator=g)
        own = torch.randint(0, 50, (n, 16), generator=g) + 50 * self.y[:, None]
        noise = torch.randint(0, 100, (n, 16), generator=g)
        self.ids = torch.where(torch.rand(n, 16, generator=g) < 0.7, own, noise)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.y[i]}


def main(argv=None) -> DoctorCallback:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=2)
    model = BertForSequenceClassification(config)
    doc = DoctorCallback(every=50, halt_on=["nan-loss"], report_dir="doctor-hf-report")
    training = TrainingArguments(output_dir="hf-out", max_steps=args.steps, per_device_train_batch_size=32,
                                 learning_rate=args.lr, report_to=[], save_strategy="no", logging_steps=50,
                                 use_cpu=True, disable_tqdm=True, max_grad_norm=0.0 if args.lr > 1 else 1.0)
    Trainer(model=model, args=training, train_dataset=Tokens(2048, 0), callbacks=[doc]).train()
    print(f"{len(doc.monitor.findings)} findings" + (f"; halted: {doc.halted}" if doc.halted else ""))
    return doc


if __name__ == "__main__":
    main()
