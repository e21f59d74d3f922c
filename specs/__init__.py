"""The example specs, shipped as `specc.zoo`: `extends: resnet18` and `specc new --from` read them."""
