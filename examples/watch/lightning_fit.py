"""doctor.watch in a Lightning fit (pip install 'doctor[lightning]').

    python examples/watch/lightning_fit.py             # healthy: no findings
    python examples/watch/lightning_fit.py --lr 30     # nan-loss: the fit is stopped by halt_on
"""

import argparse

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from doctor.integrations.lightning import DoctorCallback


class Classifier(L.LightningModule):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))

    def training_step(self, batch, _idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch, _idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def blobs(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 16, generator=torch.Generator().manual_seed(99)) * 2
    y = torch.randint(0, 4, (n,), generator=g)
    return TensorDataset(centres[y] + torch.randn(n, 16, generator=g), y)


def main(argv=None) -> DoctorCallback:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    doc = DoctorCallback(every=50, halt_on=["nan-loss"], report_dir="doctor-lightning-report")
    trainer = L.Trainer(max_steps=args.steps, callbacks=[doc], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        val_check_interval=100, check_val_every_n_epoch=None, num_sanity_val_steps=0)
    trainer.fit(Classifier(args.lr), DataLoader(blobs(4096, 0), batch_size=64, shuffle=True),
                DataLoader(blobs(512, 1), batch_size=256))
    print(f"{len(doc.monitor.findings)} findings" + (f"; halted: {doc.halted}" if doc.halted else ""))
    return doc


if __name__ == "__main__":
    main()
