"""dataset_scripts package."""
