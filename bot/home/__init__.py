"""App Home as a feature of its own: features contribute sections (`HomeSection`)."""
