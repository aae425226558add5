"""``python -m linf_tf.cli``: the same as the ``linf`` console script."""

import sys

from linf_tf.cli import main

sys.exit(main())
