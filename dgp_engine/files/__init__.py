"""What the engine reads and writes for people: photos in any format Pillow opens
(``photos``: colour profiles, EXIF, alpha and masks kept, inputs never overwritten), project
files holding a whole editing session (``project``) and exported animations (``animation``:
GIF, APNG, animated WebP, MP4, WebM, PNG sequences).

Above ``method/``: a project holds reconstruction states, and an animation's frames may be
the generator's tensors. Every write goes through ``system.fileio``.
"""
