"""Role home pages shown inside the LMS iframe."""
