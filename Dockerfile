# focaldet on Debian 12, built with the same setup script a user runs.
FROM debian:bookworm
WORKDIR /opt/focaldet
COPY . .
# FOCALDET_NATIVE=OFF: the image must run on any x86-64, not only on the machine that built it.
RUN scripts/setup.sh -DFOCALDET_NATIVE=OFF -DFOCALDET_BUILD_TESTS=OFF -DFOCALDET_BUILD_BENCH=OFF \
    && cp build/src/cli/focaldet /usr/local/bin/focaldet \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["focaldet"]
