"""The real thing: an R1 distill in 4-bit on one GPU, and a small stand-in for CPUs and tests.

One module per job, imported by name (``from course_lib.r1 import chat, loader``):

* :mod:`~course_lib.r1.models`: which distills, their pinned hub revisions, the memory check;
* :mod:`~course_lib.r1.loader`: loading in NF4 on a GPU or unquantised on a CPU;
* :mod:`~course_lib.r1.chat`: the chat template, a streamed reply, a batch of sampled replies;
* :mod:`~course_lib.r1.budget`: the thinking-budget experiment;
* :mod:`~course_lib.r1.stand_in`: a tiny random model in R1's chat format, built locally.

Paper: DeepSeek-R1 §2.4 (the distills) and §3.2 (their scores); docs/references.md "The distills".
Nothing here runs on import.
"""
