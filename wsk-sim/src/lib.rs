//! A user-mode WSK provider. Being written: see issue 3.
