"""The Deep Generative Prior method (docs/method.md): the reconstruction loop
(``reconstruct``, with ``compute`` for how it computes and ``copies`` for the private
copies of G and D a run trains; ``reconstruct_stylegan2`` for a StyleGAN2 prior; the
``report`` both yield and the rest they share, ``loop``), the degradations φ
(``degradations``), the published schedules (``presets``), the result (``state``),
manipulation after a reconstruction (``manipulate``; ``manipulate_stylegan2``) and the
one conversion of its images to pixels (``pictures``).

The table of tasks (``taskspec``) lives here too, with the working regions it uses
(``region``): ``degradations.make_degradation`` builds a task's φ from its entry (the one
mapping from tasks to φ; the loop itself takes φ), so the table cannot sit above the
method in ``tasks/``.

Above ``priors/``: a run takes a loaded prior.
"""
