"""An example imbssl-bench plugin: the `align-uniform` method and the `template_convnet`
backbone."""
