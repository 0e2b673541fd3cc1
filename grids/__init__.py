"""The area tree (city → district → sub-district → community → grid) and grid boundaries."""
