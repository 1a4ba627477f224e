//! Shared harness for flowtrace end-to-end tests.
