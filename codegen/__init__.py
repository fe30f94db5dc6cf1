"""graphc.codegen: generators of numpy and Triton code from IR graphs (issue #3)."""
