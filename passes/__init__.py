"""graphc.passes: IR-to-IR transformations, decompositions of composite ops, and autodiff."""
