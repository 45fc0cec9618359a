# Storage: a PersistentVolumeClaim binds and its data survives the pod being deleted and
# recreated; every node has Longhorn's host prerequisites (iscsid, iscsi_tcp, data path).
# Longhorn itself needs images from the internet, which the test sandbox lacks, so the
# claim uses k3s' bundled local-path provisioner (from the air-gap images).
{ t }:
let
  inherit (t) facts;
  lh = facts.addons.longhorn;
  objects = t.json "pvc" [
    {
      apiVersion = "v1";
      kind = "PersistentVolumeClaim";
      metadata.name = "data";
      spec = {
        accessModes = [ "ReadWriteOnce" ];
        storageClassName = "local-path";
        resources.requests.storage = "64Mi";
      };
    }
    {
      apiVersion = "v1";
      kind = "Pod";
      metadata.name = "writer";
      spec =
        t.podSpec
          {
            volumeMounts = [
              {
                name = "d";
                mountPath = "/data";
              }
            ];
          }
          [
            "sh"
            "-c"
            "test -f /data/mark || echo n3x-was-here > /data/mark; sleep 3600"
          ]
        // {
          volumes = [
            {
              name = "d";
              persistentVolumeClaim.claimName = "data";
            }
          ];
        };
    }
  ];
in
t.mkTest {
  name = "storage";
  testScript =
    (
      if lh.enable then
        ''
          with subtest("Longhorn host prerequisites on every node"):
              for m in machines:
                  m.wait_for_unit("iscsid")
                  m.succeed("lsmod | grep -q iscsi_tcp")
                  m.succeed("test -d ${lh.data_path}")
        ''
      else
        ""
    )
    + ''
      with subtest("a claim binds and keeps its data across pod restarts"):
          kubectl("apply -f ${objects}")
          kubectl("wait --for=condition=Ready pod/writer --timeout=600s")
          init.wait_until_succeeds("[ $(k3s kubectl get pvc data -o jsonpath='{.status.phase}') = Bound ]")
          kubectl("exec writer -- cat /data/mark")
          kubectl("delete pod writer --wait=true")
          kubectl("apply -f ${objects}")
          kubectl("wait --for=condition=Ready pod/writer --timeout=600s")
          out = kubectl("exec writer -- cat /data/mark")
          assert out.strip() == "n3x-was-here", f"data lost: {out!r}"
    '';
}
