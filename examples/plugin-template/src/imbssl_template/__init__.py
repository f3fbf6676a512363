"""An example imbssl-bench plugin: the `align-uniform` method, the `restarts` variant and the
`template_convnet` backbone."""
