//! Browser view: the index and styled feeds in headless Chromium.
