"""Layer 6: the course in a real browser (JupyterLab in headless Chromium, driven by Playwright)."""
