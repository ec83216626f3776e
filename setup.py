# Only job: hand the cffi builder to setuptools (pyproject has no key for cffi_modules).
from setuptools import setup

setup(cffi_modules=["build.py:ffibuilder"])
