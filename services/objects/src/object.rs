//! [`S3Object`]: one object of a bucket read where it lies, for data given as
//! `s3://bucket/key`, with no local copy: in ranges ([`S3Object::read_range`], what a Parquet
//! reader asks for) or streamed from an offset ([`S3Object::reader_from`]). Every read asks
//! for the ETag the object had when it was opened (`If-Match`), so an object replaced while it
//! is read fails the read rather than mixing two versions.

use super::{Download, bad_uri, parse_s3_uri, wait};
use bytes::Bytes;
use logitflow_store::StoreError;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

/// An object of a bucket, as it was when opened.
#[derive(Debug)]
pub struct S3Object {
    uri: String,
    s3: Arc<AmazonS3>,
    path: ObjectPath,
    size: u64,
    e_tag: Option<String>,
}

impl S3Object {
    /// The object at `s3://bucket/key`, its size and ETag asked for once (a HEAD), with
    /// credentials, region and endpoint from the standard `AWS_*` variables, as the store's.
    pub fn open(uri: &str) -> Result<S3Object, StoreError> {
        let (bucket, key) = parse_s3_uri(uri)?;
        if key.is_empty() || key.ends_with('/') {
            return Err(bad_uri(uri, "names no object: give s3://bucket/key"));
        }
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .map_err(|e| bad_uri(uri, &e.to_string()))?;
        let (s3, path) = (Arc::new(s3), ObjectPath::from(key));
        let head = {
            let (s3, path) = (s3.clone(), path.clone());
            wait(async move { s3.head(&path).await }).map_err(|e| bad_uri(uri, &e))?
        };
        let meta = head.map_err(|e| match e {
            object_store::Error::NotFound { .. } => bad_uri(uri, "no such object"),
            e => bad_uri(uri, &e.to_string()),
        })?;
        Ok(S3Object { uri: uri.to_string(), s3, path, size: meta.size, e_tag: meta.e_tag })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The ETag it was opened at (what identifies this version of it).
    pub fn e_tag(&self) -> Option<&str> {
        self.e_tag.as_deref()
    }

    fn options(&self, range: GetRange) -> GetOptions {
        GetOptions { range: Some(range), if_match: self.e_tag.clone(), ..GetOptions::default() }
    }

    /// The bytes in `range`, in one request.
    pub fn read_range(&self, range: Range<u64>) -> std::io::Result<Bytes> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let (s3, path, options) =
            (self.s3.clone(), self.path.clone(), self.options(GetRange::Bounded(range)));
        let got = wait(async move { s3.get_opts(&path, options).await?.bytes().await })
            .map_err(std::io::Error::other)?;
        got.map_err(|e| self.failed(e))
    }

    /// The bytes from `start` to the end, streamed as they arrive; the request is sent at the
    /// first read, so a reader made and never read costs nothing.
    pub fn reader_from(self: &Arc<Self>, start: u64) -> impl Read + Send + 'static {
        ObjectReader { object: self.clone(), start, download: None }
    }

    fn failed(&self, e: object_store::Error) -> std::io::Error {
        match e {
            object_store::Error::Precondition { .. } => std::io::Error::other(format!(
                "{} changed while it was read; read it again once it is written",
                self.uri
            )),
            e => std::io::Error::other(format!("{}: {e}", self.uri)),
        }
    }

    /// The stream of the bytes from `start`, a chunk at a time through a bounded channel.
    fn download(&self, start: u64) -> std::io::Result<Download> {
        let (s3, path, options) =
            (self.s3.clone(), self.path.clone(), self.options(GetRange::Offset(start)));
        let opened = wait(async move { Ok(Download::of(s3.get_opts(&path, options).await?)) })
            .map_err(std::io::Error::other)?;
        opened.map_err(|e| self.failed(e))
    }
}

/// [`S3Object::reader_from`]'s reader.
struct ObjectReader {
    object: Arc<S3Object>,
    start: u64,
    download: Option<Download>,
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.start >= self.object.size {
            return Ok(0);
        }
        let download = match &mut self.download {
            Some(download) => download,
            None => self.download.insert(self.object.download(self.start)?),
        };
        download.read(out)
    }
}
