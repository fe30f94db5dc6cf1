"""graphc.runtime: execution of compiled graphs (issue #3)."""
