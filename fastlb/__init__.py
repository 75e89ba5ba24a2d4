"""fastlb: a load balancer and reverse proxy for Linux.

The data plane is C (csrc/); this package is the thin control plane that
drives it.  fastlb.http exposes the HTTP/1.1 parser and fastlb.hashring the
consistent-hash tables."""

__version__ = "0.1.0"
