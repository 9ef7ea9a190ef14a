"""torch's CPU generator and its random kernels, emulated with numpy.

- :mod:`.generator`: the mt19937 seeded as ``torch.manual_seed`` seeds it, its state in
  ``torch.get_rng_state()``'s layout, and :class:`~.generator.TorchStream`, the words one
  kernel draws.
- :mod:`.kernels`: torch 2.13's kernels on x86-64 (bernoulli, uniform, normal, randint,
  randperm), each a function of a stream; :mod:`.avx2` and :mod:`.fma` hold the float32
  normal's vector math and the fused multiply-adds numpy lacks.

Another torch version's or CPU's kernels (another bernoulli path, say) are one more module
beside :mod:`.kernels`, taking the same stream.
"""
