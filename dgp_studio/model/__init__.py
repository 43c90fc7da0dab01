"""The app-state model: documents, masks, working region, results and jobs."""
