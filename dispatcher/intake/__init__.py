"""Warning intake: parse JSON or CAP 1.2 into the product's Warning, with errors that name the field."""
