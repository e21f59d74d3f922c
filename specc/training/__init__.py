"""The data and training sections: components (sources, transforms, losses, metrics, optimizers,
schedulers) in a registry, the compile-time plan that checks them against the model, and the code
generator of dataset.py and train.py. Nothing here imports torch."""
