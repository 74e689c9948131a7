def evaluate_elbo(model, dataset):
    """Held-out averages per example, in nats: the ELBO, its two terms and the training loss.

    One z per example, as in training; `elbo` is with beta = 1 whatever the model's beta.
    """
    results = model.evaluate(dataset, verbose=0, return_dict=True)
    return {key: float(results[key]) for key in ("elbo", "reconstruction", "kl", "loss")}
