"""Make the test run use a fastlb with compiled extensions, not the bare
source checkout: see bench.use_installed_fastlb, which importing bench runs."""

import bench  # noqa: F401
