package molt.student.mixer;

/**
 * Settings shared by the mixers; each family reads what it needs.
 *
 * @param featureDim Hedgehog feature dimension F per softmax half (the map's width is 2F); LoLCATs uses 64
 * @param window sliding-window size w in tokens for windowed mixers; LoLCATs uses 64
 * @param chunkSize chunk length C of the chunked training form (quadratic work only inside a chunk); for windowed
 *     mixers C must be at least w
 * @param windowFactorInit initial f_h of the window weight sigmoid(f_h); LoLCATs starts at -2.197 (factor 0.1);
 *     each mixer's default is {@link MixerRegistry#windowFactorInit}
 */
public record MixerSettings(int featureDim, int window, int chunkSize, double windowFactorInit) {
    /** LoLCATs' initial window factor: sigmoid(-2.197) = 0.1. */
    public static final double LOLCATS_WINDOW_FACTOR_INIT = -2.197;

    public static MixerSettings lolcats() {
        return new MixerSettings(64, 64, 64, LOLCATS_WINDOW_FACTOR_INIT);
    }

    public MixerSettings {
        if (featureDim < 1) {
            throw new IllegalArgumentException("feature_dim must be >= 1, found " + featureDim);
        }
        if (window < 1) {
            throw new IllegalArgumentException("window must be >= 1, found " + window);
        }
        if (chunkSize < 1) {
            throw new IllegalArgumentException("chunk_size must be >= 1, found " + chunkSize);
        }
        if (!Double.isFinite(windowFactorInit)) {
            throw new IllegalArgumentException("window_factor_init must be finite, found " + windowFactorInit);
        }
    }

    public MixerSettings withChunkSize(int c) {
        return new MixerSettings(featureDim, window, c, windowFactorInit);
    }
}
