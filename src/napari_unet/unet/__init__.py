"""The U-Net of the paper (Ronneberger, Fischer & Brox 2015) and how it learns and predicts.

- :mod:`.model`, :mod:`.presets`: the network and its size arithmetic (valid input sizes)
- :mod:`.softmax_energy`: p_k(x) and the energy E (section 3)
- :mod:`.weight_maps`: w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / 2 sigma^2)
- :mod:`.augment`: elastic deformation, flips, rotations
- :mod:`.tiling`: overlap-tile prediction, a_k(x), p_k(x), labels
- :mod:`.training`: the training loop as a generator of progress events
- :mod:`.data`: napari label conventions <-> targets; :mod:`.normalization`
- :mod:`.activations`, :mod:`.batch_norm_statistics`: looking inside, precise BN
"""
