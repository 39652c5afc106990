"""Pictures of the data and of a model's results: contact sheets, clips, flow colouring and the
HTML report of where a model is right and wrong."""
