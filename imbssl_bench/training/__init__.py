"""The training room: a Lightning Trainer fits a method (or a variant's wrapper of one) on an
image subset (`trainer.fit`), with its data (`loaders`, `augment`), callbacks, resumable
checkpoints, kept weights, DDP helpers and the throughput benchmark."""
