"""The GAN priors: which models exist (``registry``), getting their weights into the user
cache (``hub``, with ``listing``, ``store``, ``check``, ``progress`` and ``hub_async``),
reading checkpoint files (``checkpoint``, ``studiogan``; StyleGAN2's in ``stylegan2_files``)
and loading a prior — G and D — to run (``load``), with its class names (``classes``).

Above ``models/`` and ``system/``; the method and everything after it take a loaded
:class:`~dgp_engine.priors.load.Prior`.
"""
