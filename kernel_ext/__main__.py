"""`python -m kernel_ext install|uninstall ...`: see kernel_ext.kernelspec."""
import sys

from .kernelspec import main

sys.exit(main())
