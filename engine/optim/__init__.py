"""engine.optim: optimizers with fused device steps, and lr_scheduler (torch.optim)."""
