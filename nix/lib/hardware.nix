# The hardware profiles and the architecture each fixes: the Nix twin of model.rs
# `Hardware::arch`. facts.nix computes every host's `arch` with it; the hardware module
# uses it to check an overridden profile against nixpkgs' platform.
{
  archOf =
    hw:
    {
      "n100" = "x86_64-linux";
      "x86_64-generic" = "x86_64-linux";
      "qemu-x86_64" = "x86_64-linux";
      "jetson-orin-nano" = "aarch64-linux";
      "qemu-aarch64" = "aarch64-linux";
    }
    .${hw} or (throw "n3x: unknown hardware `${hw}`; run `n3x check`");
}
