/** OCI image archives: reading and checking them, and the build records of `./trellis images`. */
export {
  readOciArchive,
  readOciArchiveFile,
  runsAsNonRoot,
  sha256Digest,
  writeOciArchive,
} from './oci.ts';
export type { OciDescriptor, OciImage, OciImageConfig, OciIndex, OciManifest } from './oci.ts';
export { readBuildRecord, recordPath, writeBuildRecord } from './record.ts';
export type { BuildRecord } from './record.ts';
export { readTar, writeTar } from './tar.ts';
export type { TarEntry, TarInput } from './tar.ts';
