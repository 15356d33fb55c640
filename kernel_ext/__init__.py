"""IPython extension for clgrad (magics, rich display); see the kernel_ext issue."""
