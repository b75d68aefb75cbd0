"""JAX's float64 support, asked for where the package needs it rather than on import.

Importing the package leaves JAX's configuration alone.  The FC window, the metrics and the
gradient's FC accumulate in float64 whatever the model's precision, and float64 models exist,
so the functions that build or score a model call :func:`ensure_x64` first: it turns
``jax_enable_x64`` on once, saying so on the ``tvb_eib_plugin`` logger (INFO).  Without it JAX
would silently make every float64 array a float32 one.
"""

from __future__ import annotations

import logging

import jax

_MESSAGE = ("enabling JAX's float64 support (jax.config.update('jax_enable_x64', True)): the plugin keeps "
            "FC windows and metrics in float64 whatever the model's precision; arrays you create keep the "
            "dtype you give them")


def ensure_x64() -> None:
    """Turn on ``jax_enable_x64`` if it is off (once; logged)."""
    if not jax.config.read("jax_enable_x64"):
        jax.config.update("jax_enable_x64", True)
        logging.getLogger("tvb_eib_plugin").info(_MESSAGE)
