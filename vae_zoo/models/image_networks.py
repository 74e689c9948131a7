"""The config shared by the families built on the zoo's image networks and a likelihood p(x|z)."""


class ImageNetworks:
    """Mixin of a `ZooModel` whose encoder and decoder are `vae_zoo.networks` families and whose
    p(x|z) is a `vae_zoo.layers` likelihood (the VAE and the deterministic autoencoders): their
    common constructor arguments, kept and serialised in one place.

    The model calls `keep_network_config` in its constructor before building its layers from
    `network_args()`, and puts `network_config()` in its `get_config`.
    """

    def keep_network_config(self, latent_dim, network, filters, hidden_units, kernel_size,
                            likelihood, sigma, learn_sigma):
        self.latent_dim = int(latent_dim)
        self.network = network
        self.filters = None if filters is None else list(filters)
        self.hidden_units = None if hidden_units is None else list(hidden_units)
        self.kernel_size = kernel_size
        self.likelihood_name = likelihood
        self.sigma = sigma
        self.learn_sigma = learn_sigma

    def network_args(self):
        """The network arguments as `build_encoder`/`build_decoder` take them (None: default)."""
        return dict(
            filters=None if self.filters is None else tuple(self.filters),
            hidden_units=None if self.hidden_units is None else tuple(self.hidden_units),
            kernel_size=self.kernel_size,
        )

    def network_config(self):
        return {
            "image_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "network": self.network,
            "filters": self.filters,
            "hidden_units": self.hidden_units,
            "kernel_size": self.kernel_size,
            "likelihood": self.likelihood_name,
            "sigma": self.sigma,
            "learn_sigma": self.learn_sigma,
        }

    @property
    def continuous_observations(self):
        return self.likelihood_name == "gaussian"
