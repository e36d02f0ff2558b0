"""Shared code of the sdc-caffe reproduction package (entry points live in tools/)."""
